"""The Streamlit app for caregivers, operators and admins."""

"""The Users and access page's tabs, one module each, sharing an `AdminView` of the page's data."""

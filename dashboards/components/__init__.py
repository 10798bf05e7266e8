"""Reusable pieces of the app: sign-in, translation, time formatting, page guard, cards."""

"""Feeds: fetch, parse, clean and store what a publisher's RSS/Atom feeds hold, and what
polling remembers of each feed."""

"""Training the content network on the photos `neural-fill photos` assembles."""

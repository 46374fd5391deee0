class VideoUnreadable(Exception):
    """The file cannot be used as a video; the message says why, for the user."""

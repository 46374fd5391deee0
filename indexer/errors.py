from footage.errors import FootageError


class VideoUnreadable(FootageError):
    """The file cannot be used as a video; the message says why, for the user."""

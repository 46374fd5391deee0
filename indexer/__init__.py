"""Turns video files into catalog rows: decode, motion, detect, track, describe, write."""

"""Inference on audio of any length in bounded memory."""

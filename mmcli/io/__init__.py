"""The only code that parses untrusted bytes: tables, paths, images, audio, text."""

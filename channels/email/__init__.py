"""Email: IMAP in, SMTP out, parsing and threading with the standard library."""

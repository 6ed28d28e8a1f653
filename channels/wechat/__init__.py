"""WeChat Official Accounts (公众号): server URL callbacks, customer-service messages."""

"""微信客服 (WeChat Customer Service through WeCom): callback token, pull with a cursor, send_msg."""

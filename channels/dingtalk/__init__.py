"""DingTalk (钉钉): the company's robot as a channel, in HTTP or stream mode."""

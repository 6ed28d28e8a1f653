"""Nurture campaigns: definitions, audience and enrolment, planning due steps, results; events;
WeCom contact ways (渠道活码) that bring customers in with tags and a campaign."""

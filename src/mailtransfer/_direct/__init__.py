"""Direct delivery to the recipients' MX hosts: what the sync and async engines share."""

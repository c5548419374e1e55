"""The official site as a request channel (issue 16): the public request form at /request and the status page of
one request behind a signed link (/status/...)."""

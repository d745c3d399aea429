"""docsort review: the operator web page and the jobs API."""

"""Reports for people: the ranked findings of ``ftraceipc analyze`` (text, JSON)."""

"""Continual updates when new domains arrive: the update methods, the dev rule that ships one
(`methods`), and the exemplars replay methods keep (`exemplars`)."""

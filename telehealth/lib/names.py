"""People's names as others may see them."""


def first_name(full_name: str) -> str:
    """The first word of a name: what a sitter's email may say of the patient (subjects travel through
    mail servers and lock screens; the full name stays inside the portal)."""
    words = full_name.split()
    return words[0] if words else ""

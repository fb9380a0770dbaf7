"""User-facing errors: each says what is wrong, where, and how to fix it."""


class FrugalError(Exception):
    """An error caused by input or configuration, reported without a traceback."""


class DataError(FrugalError):
    """Bad input data (missing file or column, bad encoding, too few examples, ...)."""


class ParamsError(FrugalError):
    """An invalid or unknown key in params.yaml."""

"""The project's dashboard and report: numbers (``numbers.py``, pure) and files (``writer.py``)."""

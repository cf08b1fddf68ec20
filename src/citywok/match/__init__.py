"""Matching a clip against the index: candidate places from the evidence families
(``places``), verification, the decision, and shared material (``shared``)."""

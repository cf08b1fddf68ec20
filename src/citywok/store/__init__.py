"""Adapters that keep an index somewhere other than one local folder (snapshot.py: S3)."""

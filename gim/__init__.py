"""gim: an Info Mart ETL for contact centers.

Extracts Interaction Concentrator databases (IDBs) into a dimensional Info Mart.
"""

__version__ = "0.1.0"

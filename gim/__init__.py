"""gim: an Info Mart ETL for contact centers.

Extracts Interaction Concentrator databases (IDBs) into a dimensional Info Mart.
"""

import logging

__version__ = "0.1.0"

# A library logs, the application decides where to: until gim.runner sets up its handlers
# (and in commands that set none), nothing reaches Python's last-resort stderr handler.
logging.getLogger("gim").addHandler(logging.NullHandler())

"""The one MetaData every Info Mart table is declared in."""

import sqlalchemy as sa

metadata = sa.MetaData()

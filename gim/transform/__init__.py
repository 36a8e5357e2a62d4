"""The transformation's SQL: GIDB rows into dimensions and facts (see gim.jobs.transform)."""

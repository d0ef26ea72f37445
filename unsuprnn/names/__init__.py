"""The ground floor's names: what a user can type for a dataset (`datasets`), an objective (`objectives`,
the registry read from the objective files), a logger (`loggers`) and a number of clusters (`clusters`),
each parsed and checked without importing anything heavy."""

"""roadfeat: road extraction with filter-bank features and gradient boosting."""

__version__ = "0.1.0"

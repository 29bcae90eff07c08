"""Data files shipped with the package, read by ``backprop.data`` (names, digits).

Each file has its licence beside it: ``names.LICENSE.txt`` (MIT, the makemore names) and
``digits.LICENSE.txt`` (CC BY 4.0, the UCI optical digits).
"""

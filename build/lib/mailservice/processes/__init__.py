"""The process register (issue 9; seed 003, appendix 2 and its annex 1).

The catalogue of typical processes (``catalogue``), register rows and their rules (``register``), spreadsheets
(``spreadsheet``), the database (``models``, ``service``), change requests approved by e-mail (``web``), live
figures of group 4 (``figures``), the register's public part (``publication``) and e-mail replies to its
letters (``replies``).
"""

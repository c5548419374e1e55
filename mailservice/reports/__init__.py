"""Pictures and reports of the register for management (issue 17): SVG charts, the monthly report."""

"""Request classifier (issue 3): type, topic and urgency of every incoming request, with reasons.

Weighted rules over Russian lemmas (``rules.yaml``, editable by staff) work from the first day; a TF-IDF and
logistic-regression model trained on staff-confirmed labels (``model.py``) is blended in when present.
Entry points: :func:`mailservice.classify.engine.default_classifier` and the ``mailservice classify`` commands.
"""

/* Russian search, part 1 of 2 (see ru-search.js): a minimal stand-in for the lunr object, so that the
   Snowball stemmer files of lunr-languages that ship with Material can be loaded in the page itself. */
window.__msLunrBefore = window.lunr;
window.lunr = {
  Pipeline: { registerFunction: function () {} },
  generateStopWordFilter: function () { return function (token) { return token; }; }
};

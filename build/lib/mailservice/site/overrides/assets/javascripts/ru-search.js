/* Russian search, part 2 of 2. Material searches in a worker and appends a wildcard to every query term
   ("рассылкам*"); lunr skips the stemmer for wildcard terms, so an inflected query finds nothing in a stemmed
   index. We stem each Russian query term here, with the same Snowball stemmer the index was built with
   (lunr.ru from lunr-languages), before the query reaches the worker: «рассылкам» -> «рассылк*» finds
   «рассылки», «рассылка», «рассылку». Nothing is loaded from another host. */
(function () {
  var stemmer = window.lunr && window.lunr.ru && window.lunr.ru.stemmer;
  window.lunr = window.__msLunrBefore;
  delete window.__msLunrBefore;
  if (typeof stemmer !== "function" || typeof window.Worker !== "function") return;

  var QUERY = 2; /* Material's search message types: 0 setup, 1 ready, 2 query, 3 result */
  var CYRILLIC = /[\u0400-\u04ff]/;
  var SYNTAX = /[+\-*~^:]/;

  function stemQuery(query) {
    return query.split(/(\s+)/).map(function (part) {
      if (!CYRILLIC.test(part) || SYNTAX.test(part)) return part;
      var word = part.toLowerCase().replace(/ё/g, "е").replace(/^[^\u0400-\u04ff\w]+|[^\u0400-\u04ff\w]+$/g, "");
      return word ? stemmer(word) : part;
    }).join("");
  }

  var Base = window.Worker; /* the iframe-worker shim on file://, the browser's Worker otherwise */
  window.Worker = function (url, options) {
    var worker = new Base(url, options);
    var post = worker.postMessage.bind(worker);
    worker.postMessage = function (message) {
      if (message && message.type === QUERY && typeof message.data === "string") {
        message = { type: QUERY, data: stemQuery(message.data) };
      }
      post(message);
    };
    return worker;
  };
  window.__msStemQuery = stemQuery;
})();

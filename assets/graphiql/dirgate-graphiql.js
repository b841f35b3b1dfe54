// Starts GraphiQL on dirgate's page (served from the binary with the rest of the assets;
// no inline script, so the page's Content-Security-Policy allows scripts from 'self' only).
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  function absolute(path, websocket) {
    var url = new URL(path, window.location.origin);
    if (websocket) url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }
  // dirgate reads a subscription's token from the graphql-ws connection_init payload, so the
  // headers pane is sent there too: one fetcher (and one WebSocket) per set of headers.
  var fetchers = new Map();
  function fetcherFor(headers) {
    var key = JSON.stringify(headers || {});
    if (!fetchers.has(key)) {
      fetchers.set(key, GraphiQL.createFetcher({
        url: absolute(root.dataset.endpoint),
        subscriptionUrl: absolute(root.dataset.subscriptions, true),
        wsConnectionParams: headers || {},
      }));
    }
    return fetchers.get(key);
  }
  var defaultHeaders = root.dataset.headers || '';
  var initialHeaders = null;
  try {
    initialHeaders = defaultHeaders ? JSON.parse(defaultHeaders) : null;
  } catch (e) {
    initialHeaders = null;
  }
  // GraphiQL introspects before its headers pane exists, without headers: the pane's initial
  // content stands in until then (dirgate answers 401 to an introspection without a token).
  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || initialHeaders;
    return fetcherFor(headers)(params, Object.assign({}, opts, { headers: headers }));
  }
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: defaultHeaders,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: defaultHeaders ? 'headers' : true,
    })
  );
})();

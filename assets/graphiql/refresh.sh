#!/usr/bin/env bash
# Refreshes the GraphiQL assets dirgate serves from its binary (src/http/graphiql.rs) from the
# npm packages, at the versions pinned below; keeps their licences beside them.
# Usage: assets/graphiql/refresh.sh   (needs npm and the npm registry; then update VERSIONS
# in src/http/graphiql.rs if a version changed, and run the GraphiQL browser test)
set -euo pipefail
cd "$(dirname "$0")"
GRAPHIQL=4.1.2
REACT=18.3.1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for pkg in "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT"; do
  name="${pkg%@*}"
  mkdir -p "$work/$name"
  (cd "$work" && npm pack --silent "$pkg" >/dev/null && tar xzf "$name"-*.tgz -C "$name")
done
cp "$work/graphiql/package/graphiql.min.js" "$work/graphiql/package/graphiql.min.css" .
cp "$work/graphiql/package/LICENSE" LICENSE.graphiql
cp "$work/react/package/umd/react.production.min.js" .
cp "$work/react-dom/package/umd/react-dom.production.min.js" .
cp "$work/react/package/LICENSE" LICENSE.react
cp "$work/react-dom/package/LICENSE" LICENSE.react-dom
# Source map references point at files dirgate does not serve.
sed -i '/^\/\/# sourceMappingURL=/d' graphiql.min.js react.production.min.js react-dom.production.min.js
printf 'graphiql %s\nreact %s\nreact-dom %s\n' "$GRAPHIQL" "$REACT" "$REACT" > VERSIONS
echo "GraphiQL $GRAPHIQL, React $REACT: assets refreshed"

// Package docs holds allot's documentation. Its one piece of Go embeds the
// OpenAPI description of the HTTP API, so that every node serves the very
// bytes of docs/openapi.yaml at GET /v1/openapi.yaml.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the OpenAPI 3 description of the v1 API.
// Callers must not modify it.
//
//go:embed openapi.yaml
var OpenAPI []byte

package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"allot/docs"
)

// contentTypeYAML is the media type of YAML (RFC 9512).
var contentTypeYAML = []string{"application/yaml"}

// openAPI serves docs/openapi.yaml, the description of this API, as it was
// built into the binary. It needs no token: the description tells nothing
// a client could not learn from the docs, and a client generator or API
// browser fetches it before it holds one.
func openAPI(c *gin.Context) {
	writeData(c, http.StatusOK, contentTypeYAML, docs.OpenAPI)
}

// Command tfnames prints the Terraform OpenStack provider's resource and data source names as
// JSON. tokens.py matches them with the Python SDK's type tokens to write the bridge's token
// map at build time, so the map always comes from the two pinned packages, never by hand.
package main

import (
	"encoding/json"
	"os"
	"sort"

	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-provider-openstack/terraform-provider-openstack/v3/openstack"
)

func names(m map[string]*schema.Resource) []string {
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func main() {
	p := openstack.Provider()
	err := json.NewEncoder(os.Stdout).Encode(map[string][]string{
		"resources":   names(p.ResourcesMap),
		"dataSources": names(p.DataSourcesMap),
	})
	if err != nil {
		os.Exit(1)
	}
}

// Command pulumi-resource-openstack: the Terraform OpenStack provider bridged to Pulumi, built
// here because the Pulumi provider's own module is not served by the Go module proxy.
//
// tokens_gen.go (the Python SDK's type tokens for each Terraform name) is not in the checkout:
// tools/real-engine.sh writes it into the build directory with tokens.py before `go build`.
package main

import (
	"fmt"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shim "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-provider-openstack/terraform-provider-openstack/v3/openstack"
)

// The version of the pulumi-openstack Python SDK the program pins: its default provider
// requests exactly this plugin version.
const version = "5.5.3"

// tokenMapping pairs a Terraform resource or data source name with one Python SDK type token.
type tokenMapping struct {
	tf  string
	tok string
}

// keys gives each mapping a key of its own in the bridge's tables. The bridge serves one token
// per Terraform name; the SDK keeps a second, deprecated token for a few (index/lbLoadbalancerV2
// beside loadbalancer/loadBalancer), so those get a clone of the Terraform resource under a
// new key, as the bridge's own rename helpers do.
func keys(mappings []tokenMapping, tfMap shim.ResourceMap) []string {
	out := make([]string, len(mappings))
	seen := map[string]int{}
	for i, m := range mappings {
		seen[m.tf]++
		out[i] = m.tf
		if seen[m.tf] > 1 {
			out[i] = fmt.Sprintf("%s_alias%d", m.tf, seen[m.tf]-1)
			if err := shim.CloneResource(tfMap, m.tf, out[i]); err != nil {
				panic(err)
			}
		}
	}
	return out
}

func main() {
	p := shimv2.NewProvider(openstack.Provider())
	info := tfbridge.ProviderInfo{
		P:           p,
		Name:        "openstack",
		Version:     version,
		Resources:   map[string]*tfbridge.ResourceInfo{},
		DataSources: map[string]*tfbridge.DataSourceInfo{},
	}
	for i, key := range keys(resourceTokens, p.ResourcesMap()) {
		info.Resources[key] = &tfbridge.ResourceInfo{Tok: tokens.Type(resourceTokens[i].tok)}
	}
	for i, key := range keys(dataSourceTokens, p.DataSourcesMap()) {
		info.DataSources[key] = &tfbridge.DataSourceInfo{Tok: tokens.ModuleMember(dataSourceTokens[i].tok)}
	}
	tfbridge.Main("openstack", version, info, nil)
}

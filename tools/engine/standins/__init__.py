"""Provider plugins of openstack-k8s's own that stand in for tls, random, command and
kubernetes, whose Go modules cannot be fetched here (issue 22). tls and random are real
implementations; command and kubernetes refuse to act. See docs/standins.md."""

package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/fleetmq/fleetmq/broker/cluster"
	"github.com/fleetmq/fleetmq/broker/config"
)

// clusterConfig turns the config file's cluster section into the
// broker's; nil when the broker runs alone.
func clusterConfig(c *config.Cluster, log *slog.Logger) (*cluster.Config, error) {
	if c == nil {
		return nil, nil
	}
	data, err := os.ReadFile(c.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.credentialsFile: %w", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	if !ok || user == "" || pass == "" {
		return nil, fmt.Errorf("cluster.credentialsFile %s: want username:password", c.CredentialsFile)
	}
	node := c.NodeName
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("cluster.nodeName: not set and no host name: %w", err)
		}
	}
	return &cluster.Config{
		Name: c.Name, NodeName: node,
		Listen: cmp.Or(c.Listen, config.DefaultClusterListen), Peers: c.Peers,
		Username: user, Password: pass, Log: log,
	}, nil
}

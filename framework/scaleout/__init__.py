"""Scale-out over NATS JetStream: streamers hold one private socket per key across all processes and publish
its events; strategy processes consume them through durable consumers (see README, "Many processes")."""

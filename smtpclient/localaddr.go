package smtpclient

import "net"

// LocalIP is our IP address on the connection ("" if it has none).
func (c *Client) LocalIP() string { return c.localIP() }

func (c *Client) localIP() string {
	if c.conn == nil {
		return ""
	}
	if a, ok := c.conn.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

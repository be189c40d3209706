module example.com/twilio-gateway/client/go

go 1.19

// The versions gRPC 1.33.3 itself requires: what `go get` resolves with a module proxy.
require (
	github.com/golang/protobuf v1.4.1
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
)

require (
	golang.org/x/net v0.0.0-20190311183353-d8887717615a // indirect
	golang.org/x/sys v0.0.0-20190215142949-d0b11bdaac8a // indirect
	golang.org/x/text v0.3.0 // indirect
	google.golang.org/protobuf v1.25.0 // indirect
)

// Offline builds (Debian 12, no module proxy): Debian's copies stand in for every dependency.
// They have no effect on a module that depends on this one. See README.md, "Building offline".
replace (
	github.com/golang/protobuf => /usr/share/gocode/src/github.com/golang/protobuf
	golang.org/x/net => /usr/share/gocode/src/golang.org/x/net
	golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys
	golang.org/x/text => /usr/share/gocode/src/golang.org/x/text
	google.golang.org/genproto => /usr/share/gocode/src/google.golang.org/genproto
	google.golang.org/grpc => /usr/share/gocode/src/google.golang.org/grpc
	google.golang.org/protobuf => /usr/share/gocode/src/google.golang.org/protobuf
)

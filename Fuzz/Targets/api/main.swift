// The REST API's untrusted side: the router and every JSON model it strictly decodes (the method and path come
// from the input's first bytes, the body is the rest), and Firecracker's config file format.
import FuzzSupport
import SwiftletAPI

let methods = ["GET", "PUT", "PATCH", "POST", "DELETE"]
let paths = ["/", "/actions", "/boot-source", "/machine-config", "/drives/rootfs", "/drives/", "/network-interfaces/eth0",
             "/vsock", "/logger", "/metrics", "/vm", "/snapshot/create", "/snapshot/load", "/mmds", "/balloon",
             "/entropy", "/cpu-config", "/version", "/vm/config", "/drives/a/b"]

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    let method = methods[Int(input.integer(UInt8.self)) % methods.count]
    let pathChoice = Int(input.integer(UInt8.self))
    let path = pathChoice < 240 ? paths[pathChoice % paths.count] : String(decoding: input.take(pathChoice - 230), as: UTF8.self)
    let body = input.rest()
    _ = try? APIRouter.route(method: method, path: path, body: body)
    _ = try? VMResources(configFile: body)
}

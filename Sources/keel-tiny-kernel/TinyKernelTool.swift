import Foundation
import KeelTestSupport

/// Writes one of the tiny test kernels (see `TinyKernel`) to a file, for the benchmarks that
/// run `keel run` directly on this machine's /dev/kvm.
/// Usage: keel-tiny-kernel power-off|spin|port-writes N OUTPUT
@main
struct TinyKernelTool {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        let code: [UInt8]
        var rest = ArraySlice(args.dropFirst())
        switch args.first {
        case "power-off": code = TinyKernel.powerOff
        case "spin": code = TinyKernel.spin
        case "port-writes":
            guard let n = rest.first.flatMap(UInt32.init), n > 0 else {
                FileHandle.standardError.write(Data("keel-tiny-kernel: port-writes needs a count > 0\n".utf8))
                exit(2)
            }
            code = TinyKernel.portWrites(n)
            rest = rest.dropFirst()
        default:
            FileHandle.standardError.write(Data("usage: keel-tiny-kernel power-off|spin|port-writes N OUTPUT\n".utf8))
            exit(2)
        }
        guard let output = rest.first else {
            FileHandle.standardError.write(Data("keel-tiny-kernel: missing OUTPUT\n".utf8))
            exit(2)
        }
        try Data(TinyKernel.image(code: code)).write(to: URL(fileURLWithPath: output))
    }
}

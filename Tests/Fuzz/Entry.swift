// The one entry libFuzzer calls; FUZZ_TARGET (json, csv or instance) picks the target, so that one build
// serves all three (scripts/fuzz).
import Foundation

let target: (UnsafePointer<UInt8>, Int) -> Int32 = {
    switch ProcessInfo.processInfo.environment["FUZZ_TARGET"] {
    case "csv": fuzzCSV
    case "instance": fuzzInstance
    default: fuzzJSON
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 { target(data, size) }

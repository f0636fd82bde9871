import ArgumentParser
import Foundation
import SELinux
import SVirt
import SVirtLinux

/// `svirt label`: plan, apply and restore a VM's labels without starting anything.
struct Label: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Plan, apply and restore the SELinux labels of a VM's resources, without starting it.",
        subcommands: [LabelPlanCommand.self, LabelApplyCommand.self, LabelRestoreCommand.self])
}

/// What every `label` subcommand takes: the domain XML and how to read it.
struct DomainXMLOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The libvirt domain XML file ('-' reads standard input).", valueName: "DOMAIN.xml"))
    var file: String

    @Flag(help: "Read the XML as the live XML of a running VM: its <label> and <imagelabel> are used as written.")
    var live = false

    func environment() throws -> HostEnvironment {
        try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
    }

    /// The domain definition, with errors that name the file.
    func domain() throws -> DomainDefinition { try readDomainXML(file, mode: live ? .live : .inactive) }
}

/// How a plan entry is shown to people.
struct PlanEntryJSON: Codable {
    var resource: String
    var kind: String
    var path: String
    var context: String?
    var remember: Bool
    var restore: String
    var access: String
    var note: String?

    init(_ e: LabelPlan.Entry) {
        resource = e.resource
        kind = e.kind.rawValue
        path = e.path
        context = e.context?.description
        remember = e.remember
        restore = e.restore.rawValue
        access = e.access.rawValue
        note = e.note
    }
}

struct LabelJSON: Codable {
    var type: String
    var relabel: Bool
    var process: String?
    var image: String
    var level: String
    var reserved: String?

    init(_ l: SecurityLabel) {
        type = l.type.rawValue
        relabel = l.relabel
        process = l.process?.description
        image = l.image.description
        level = l.range.description
        reserved = l.reservedLevel?.description
    }
}

struct OutcomeJSON: Codable {
    var resource: String
    var path: String
    var outcome: String
    var context: String?
    var detail: String?

    init(_ item: LabelReport.Item) {
        resource = item.entry.resource
        path = item.path ?? item.entry.path
        switch item.outcome {
        case .labelled(let c): outcome = "labelled"; context = c.description
        case .restored(let c, let how): outcome = "restored"; context = c?.description; detail = how
        case .unsupported(let why): outcome = "unsupported"; detail = why
        case .left(let why): outcome = "left"; detail = why
        case .failed(let why): outcome = "failed"; detail = why
        }
    }
}

/// The label summary printed above tables.
func labelSummary(_ domain: String, _ l: SecurityLabel) -> String {
    var lines = ["Domain:          \(domain)", "Label type:      \(l.type.rawValue)\(l.relabel ? "" : " (relabel='no')")"]
    lines.append("Process label:   \(l.process?.description ?? "(none)")")
    lines.append("Image label:     \(l.image)")
    if let r = l.reservedLevel { lines.append("Reserved level:  \(r)") }
    return lines.joined(separator: "\n")
}

/// A report as a table: what happened to each path.
func outcomeTable(_ report: LabelReport) -> String {
    table(["Outcome", "Path", "Label or reason"], report.items.map { i in
        let o = OutcomeJSON(i)
        return [o.outcome, o.path, [o.context, o.detail].compactMap { $0 }.joined(separator: " — ")]
    })
}

import Foundation

/// The OpenAPI 3.0 document of `/api/v1`, made from `ConsoleAPI.routes`.
enum OpenAPIDocument {
    static func object(server: ConsoleServer) -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for route in ConsoleAPI.routes {
            var op: [String: Any] = [
                "operationId": route.operation.rawValue,
                "summary": route.summary,
            ]
            var parameters: [[String: Any]] = []
            if route.path.contains("{name}") {
                parameters.append(["name": "name", "in": "path", "required": true, "schema": ["type": "string"],
                                   "description": "The domain's name, id or UUID."])
            }
            for q in route.queryParameters {
                parameters.append(["name": q.name, "in": "query", "required": false, "schema": ["type": "integer"], "description": q.description])
            }
            if !parameters.isEmpty { op["parameters"] = parameters }
            if let consumes = route.consumes {
                op["requestBody"] = ["required": true, "content": [consumes: ["schema": ["type": "string"]]],
                                     "description": "At most \(server.bodyLimit) bytes."]
            }
            let okSchema: [String: Any] = route.schema.map { ["$ref": "#/components/schemas/\($0)"] }
                ?? (route.produces == "application/json" ? ["type": "object"] : ["type": "string"])
            var responses: [String: Any] = [
                route.operation == .define ? "201" : "200": ["description": "Success.", "content": [route.produces: ["schema": okSchema]]],
            ]
            let error: [String: Any] = ["content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
            func add(_ code: String, _ description: String) {
                var e = error
                e["description"] = description
                responses[code] = e
            }
            add("401", "No bearer token, or a wrong one.")
            if route.path.contains("{name}") { add("404", "No such domain.") }
            if route.changesState { add("409", "The domain's state does not allow it (already running, not running).") }
            if route.consumes != nil {
                add("400", "Malformed domain XML; the message is the XML reader's.")
                add("413", "The body is larger than the limit.")
            }
            op["responses"] = responses
            op["security"] = [["bearerAuth": [String]()]]
            paths[route.path, default: [:]][route.method.rawValue.lowercased()] = op
        }
        let str: [String: Any] = ["type": "string"]
        let optStr: [String: Any] = ["type": "string", "nullable": true]
        let summary: [String: Any] = ["type": "object", "required": ["name", "uuid", "state", "persistent"], "properties": [
            "id": ["type": "integer", "nullable": true], "name": str, "uuid": str, "state": str, "persistent": ["type": "boolean"],
            "pid": ["type": "integer", "nullable": true], "label": optStr, "labelSource": optStr, "imageLabel": optStr,
            "level": optStr, "confinement": optStr,
        ]]
        let resource: [String: Any] = ["type": "object", "required": ["resource", "path"], "properties": [
            "resource": str, "path": str, "label": optStr, "runningLabel": optStr, "owner": optStr,
        ]]
        let schemas: [String: Any] = [
            "DomainSummary": summary,
            "DomainList": ["type": "array", "items": ["$ref": "#/components/schemas/DomainSummary"]],
            "ResourceLabel": resource,
            "ResourceLabels": ["type": "array", "items": ["$ref": "#/components/schemas/ResourceLabel"]],
            "DomainPage": ["type": "object", "required": ["domain", "resources", "xml"], "properties": [
                "domain": ["$ref": "#/components/schemas/DomainSummary"],
                "resources": ["$ref": "#/components/schemas/ResourceLabels"], "xml": str, "resourcesError": optStr,
            ]],
            "ActionResult": ["type": "object", "required": ["name", "action", "message", "warnings"], "properties": [
                "name": str, "action": str, "message": str, "warnings": ["type": "array", "items": str],
                "domain": ["$ref": "#/components/schemas/DomainSummary"],
            ]],
            "HostReport": ["type": "object", "description": "As `svirt host --json` prints it.",
                           "required": ["selinux", "confinement", "contexts"]],
            "Error": ["type": "object", "required": ["error", "status"], "properties": ["error": str, "status": ["type": "integer"]]],
        ]
        return [
            "openapi": "3.0.3",
            "info": [
                "title": "svirt console API", "version": "1",
                "description": "The operations of the svirt CLI over HTTP. Every call needs the bearer token "
                    + "(Authorization: Bearer, from the console's token file), on loopback too.",
            ],
            "servers": [["url": ConsoleAPI.prefix]],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer"]],
            ],
        ]
    }

    static func json(server: ConsoleServer) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object(server: server), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Array(data)
    }
}

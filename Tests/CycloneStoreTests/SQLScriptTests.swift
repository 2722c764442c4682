@testable import CycloneStore
import Testing

@Suite struct SQLScriptTests {
    @Test func splitsOnlyAtTopLevelSemicolons() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (x text DEFAULT 'a;b');
            /* block; comment */
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
            SELECT $tag$ ; $tag$, "odd;name" FROM t
            ;;
            """
        #expect(SQLScript.statements(script) == [
            "-- a comment; with a semicolon\nCREATE TABLE t (x text DEFAULT 'a;b')",
            "/* block; comment */\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
            "SELECT $tag$ ; $tag$, \"odd;name\" FROM t",
        ])
    }
}

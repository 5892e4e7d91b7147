/*
 * A tiny Flink job for artifact-gateway's end-to-end tests: it is the "job jar" the gateway serves
 * and the session cluster runs. Counts words of a few built-in lines (or of the program arguments)
 * in BATCH runtime mode, so the job reaches FINISHED on its own, and prints "(word,count)" records
 * to the TaskManager's stdout.
 *
 * Built by tests/flink/build-job.sh against the flink-dist jar; Main-Class is set in the manifest.
 */

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

import java.util.Arrays;
import java.util.List;

public final class WordCountJob {

    static final List<String> DEFAULT_LINES =
            Arrays.asList(
                    "the gateway serves the jar",
                    "the operator fetches the jar",
                    "the cluster runs the job");

    private WordCountJob() {}

    public static void main(String[] args) throws Exception {
        List<String> lines = args.length > 0 ? Arrays.asList(args) : DEFAULT_LINES;

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);

        env.fromData(lines)
                .name("lines")
                .flatMap(new Tokenizer())
                .name("tokenize")
                .keyBy(new WordKey())
                .sum(1)
                .name("count")
                .print()
                .name("print");

        env.execute("artifact-gateway word count");
    }

    /** Splits a line into lower-case words, emitting (word, 1) for each. */
    public static final class Tokenizer implements FlatMapFunction<String, Tuple2<String, Integer>> {
        @Override
        public void flatMap(String line, Collector<Tuple2<String, Integer>> out) {
            for (String word : line.toLowerCase().split("\\W+")) {
                if (!word.isEmpty()) {
                    out.collect(Tuple2.of(word, 1));
                }
            }
        }
    }

    /** Keys a (word, count) pair by its word. */
    public static final class WordKey implements KeySelector<Tuple2<String, Integer>, String> {
        @Override
        public String getKey(Tuple2<String, Integer> value) {
            return value.f0;
        }
    }
}

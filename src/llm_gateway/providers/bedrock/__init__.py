"""AWS Bedrock through Converse, ConverseStream and InvokeModel (see provider.py)."""
